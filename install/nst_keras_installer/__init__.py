"""The nst-keras installer, by concern (install/install.py is only the Python version gate in front of it).

- common: exit codes, errors, output, the platform's folders, write checks, subprocesses;
- gimp: finding GIMP 3 and its plug-in folders;  flatpak: the Flatpak GIMP's folders and host permission;
- backend_choice: which Keras backend each platform gets (pure);  backend: the probes, pip's command lines for
  that backend, and the record the engine reads;
- pyenv: the engine's virtualenv, pip, writing the record;  plugin: the plug-in folder and its settings;
- weights: Keras's VGG19 file (facts shared with the engine through nst_keras/weights_facts.py);
- manifest: what was created, the dry-run action layer, uninstall;  installer: the steps in order;  main: arguments.

Standard library only: it runs on the system Python, before the engine exists.
"""

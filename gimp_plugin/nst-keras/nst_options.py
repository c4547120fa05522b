"""The plug-in's options: ONE table (OPTIONS) drives everything an option touches.

Each row makes the procedure's PDB argument (name, label, help, range, default: GIMP stores the
last values and shows them on Re-Show and Filters > Repeat), places it in the dialog's frame
(`group`), turns its value into the engine's command line (`flag` + `engine`), and names the
engine setting it sets (`key`, a field of nst_keras.config.StyleConfig; stored in the parasite on
the result layer). A new option is one new row.

Standard library only (GIMP's own Python); the registration takes GIMP's modules as arguments so
that the table can be read and tested outside GIMP.
"""

# StyleConfig's defaults the dialog shows (tests/test_plugin_unit.py checks them against nst_keras.config).
DEFAULTS = {
    "look": "photo",
    "preset": "normal",
    "max_size": 1024,
    "strength": 50.0,
    "style_scale": 1.0,
    "preserve_colors": None,
    "seed": None,
}

# Style strength 0..100 is the engine's own --strength (StyleConfig.strength: 0 keeps the photo,
# 100 lets the style dominate; the engine maps it to its loss weights).
STRENGTH_DEFAULT = DEFAULTS["strength"]

# (value, label, help) of the quality choice: the values are StyleConfig's presets.
QUALITY_CHOICES = (
    ("draft", "Quick draft", "Fewest steps: a first look in a fraction of the time"),
    ("normal", "Normal", "A good balance of quality and time"),
    ("high", "High quality", "Most steps: finest detail, takes several times longer"),
)

# (value, label, help) of the balance choice: the values are StyleConfig's looks (nst_keras.config.LOOKS).
LOOK_CHOICES = (
    ("photo", "Keep the photo", "The style's colours and textures over your picture; its subject stays clear"),
    (
        "painterly",
        "Painterly",
        "The style's brush strokes take over, as in the classic neural-style tools. Fine line styles such as "
        "hatching can paint your picture away: choose Keep the photo for them, or lower the strength",
    ),
)

# The dialog's frames, in order: (group, title).
GROUPS = (("look", "Look"), ("quality", "Quality and speed"))


def format_number(value):
    """A float for the command line: short, exact enough, never in exponent form."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return text or "0"


def _same(value, _values):
    return value


class Option:
    """One row of OPTIONS (see the module docstring).

    kind: "choice" (choices: (value, label, help) rows), "int", "double" or "boolean".
    engine(value, values) -> the engine's value for `key`, None to leave the flag out
    (values: every option's dialog value by name, for options that depend on another one).
    slider: shown as a spin scale with this step (doubles).
    """

    def __init__(
        self,
        name,
        kind,
        label,
        help,
        default,
        *,
        group,
        key=None,
        flag=None,
        engine=_same,
        minimum=None,
        maximum=None,
        choices=(),
        slider=None,
    ):
        self.name, self.kind, self.label, self.help, self.default = name, kind, label, help, default
        self.group, self.key, self.flag, self.engine = group, key, flag, engine
        self.minimum, self.maximum, self.choices, self.slider = minimum, maximum, choices, slider


OPTIONS = (
    Option(
        "balance",
        "choice",
        "_Balance",
        "How much of your picture is kept against how much of the style is painted in",
        DEFAULTS["look"],
        group="look",
        key="look",
        flag="--look",
        choices=LOOK_CHOICES,
    ),
    Option(
        "style-strength",
        "double",
        "Style stre_ngth",
        "How strongly the style is painted in: lower keeps more of your picture, higher paints the style in "
        "harder. 50 is the balance chosen above.",
        STRENGTH_DEFAULT,
        group="look",
        key="strength",
        flag="--strength",
        minimum=0.0,
        maximum=100.0,
        slider=1.0,
    ),
    Option(
        "keep-colours",
        "boolean",
        "_Keep the photo's colours",
        "On: only the brush strokes and textures of the style are painted in, your layer keeps its colours. "
        "Off: the result takes the style's colours.",
        DEFAULTS["preserve_colors"] is not None,
        group="look",
        key="preserve_colors",
        flag="--preserve-colors",
        engine=lambda value, _values: "luminance" if value else None,
    ),
    Option(
        "style-scale",
        "double",
        "Brush-stroke si_ze",
        "Size of the style's brush strokes and patterns: below 1 finer, above 1 bigger",
        DEFAULTS["style_scale"],
        group="look",
        key="style_scale",
        flag="--style-scale",
        minimum=0.1,
        maximum=4.0,
        slider=1.0,
    ),
    Option(
        "quality",
        "choice",
        "_Quality",
        "More quality takes more time",
        DEFAULTS["preset"],
        group="quality",
        key="preset",
        flag="--preset",
        choices=QUALITY_CHOICES,
    ),
    Option(
        "max-size",
        "int",
        "_Working size (pixels)",
        "The picture is painted at most this many pixels wide or high, then scaled back to your layer's "
        "size. Bigger shows finer detail but is slower and needs more memory. 0: your layer's own size.",
        DEFAULTS["max_size"],
        group="quality",
        key="max_size",
        flag="--max-size",
        minimum=0,
        maximum=16384,
    ),
    Option(
        "same-result",
        "boolean",
        "Same result _every time",
        "On: running again with the same settings paints the same picture (choose a Variation for another "
        "one). Off: every run paints a slightly different picture.",
        DEFAULTS["seed"] is not None,
        group="quality",
    ),
    Option(
        "variation",
        "int",
        "_Variation",
        "With 'Same result every time' on: each number gives its own version of the picture, the same every time",
        DEFAULTS["seed"] or 0,
        group="quality",
        key="seed",
        flag="--seed",
        engine=lambda value, values: int(value) if values.get("same-result") else None,
        minimum=0,
        maximum=2**31 - 1,
    ),
)

BY_NAME = {option.name: option for option in OPTIONS}


def group_names(group):
    """The names of one dialog frame's options, in table order."""
    return [option.name for option in OPTIONS if option.group == group]


def default_values():
    return {option.name: option.default for option in OPTIONS}


def read_values(config):
    """Every option's value from a GimpProcedureConfig (or anything with get_property)."""
    return {option.name: config.get_property(option.name) for option in OPTIONS}


def engine_options(values):
    """{StyleConfig field: value} for the options that set one (None: the engine's default)."""
    out = {}
    for option in OPTIONS:
        if option.key is not None:
            out[option.key] = option.engine(values[option.name], values)
    return out


def _format(value):
    if isinstance(value, bool):
        raise TypeError("a boolean option needs an engine function that gives the flag's value")
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def engine_args(values):
    """The engine's command-line options for these values (options at None are left out)."""
    argv = []
    for option in OPTIONS:
        if option.flag is None:
            continue
        value = option.engine(values[option.name], values)
        if value is not None:
            argv += [option.flag, _format(value)]
    return argv


def settings_record(values, style_name, plugin_version, engine_version=None):
    """What the parasite on the result layer stores (JSON): the engine's settings and the dialog's values."""
    record = {"plugin": plugin_version, "engine": engine_version, "style": style_name}
    record.update(engine_options(values))
    record["options"] = dict(values)
    return record


def add_arguments(procedure, Gimp, GObject):
    """Add every option as a PDB argument of `procedure` (GIMP's modules passed in)."""
    rw = GObject.ParamFlags.READWRITE
    for option in OPTIONS:
        if option.kind == "choice":
            choice = Gimp.Choice.new()
            for i, (value, label, help_text) in enumerate(option.choices):
                choice.add(value, i, label, help_text)
            procedure.add_choice_argument(option.name, option.label, option.help, choice, option.default, rw)
        elif option.kind == "boolean":
            procedure.add_boolean_argument(option.name, option.label, option.help, option.default, rw)
        elif option.kind == "int":
            procedure.add_int_argument(
                option.name, option.label, option.help, option.minimum, option.maximum, option.default, rw
            )
        elif option.kind == "double":
            procedure.add_double_argument(
                option.name, option.label, option.help, option.minimum, option.maximum, option.default, rw
            )
        else:
            raise ValueError(f"option {option.name}: unknown kind {option.kind!r}")

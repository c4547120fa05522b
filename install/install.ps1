# Install nst-keras on Windows: finds Python 3.10 or newer and runs install.py with all arguments.
#   powershell -ExecutionPolicy Bypass -File install\install.ps1 [--dry-run] [--uninstall] ...
# Tries the py launcher (py -3), then python and python3 on PATH. Exit 3 when no Python 3.10+ is found.
$ErrorActionPreference = 'Stop'
$installer = Join-Path $PSScriptRoot 'install.py'
$check = 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)'

$candidates = @(
    @{ Exe = 'py'; Args = @('-3') },
    @{ Exe = 'python'; Args = @() },
    @{ Exe = 'python3'; Args = @() }
)
foreach ($c in $candidates) {
    if (-not (Get-Command $c.Exe -ErrorAction SilentlyContinue)) { continue }
    # The Microsoft Store's python.exe stub fails this check instead of running: it is skipped.
    try {
        & $c.Exe @($c.Args) -c $check 2>$null | Out-Null
        $found = ($LASTEXITCODE -eq 0)
    } catch {
        $found = $false
    }
    if ($found) {
        & $c.Exe @($c.Args) $installer @args
        exit $LASTEXITCODE
    }
}

[Console]::Error.WriteLine('nst-keras installer: error: Python 3.10 or newer was not found (tried: py -3, python, python3); install it from https://www.python.org/downloads/ (tick "Add python.exe to PATH") or with: winget install Python.Python.3.12, then run this again.')
exit 3

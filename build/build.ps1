# Build the one-folder app on Windows: dist\PumpFL\PumpFL.exe (no console window).
# Run from anywhere after installing as the README says (python -m venv .venv; .venv\Scripts\pip install -e ".[dev]").
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$py = if ($env:PYTHON) { $env:PYTHON } else { ".venv\Scripts\python.exe" }
& $py build\make_icons.py
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
& $py -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath build\work build\pumpfl.spec
if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
Write-Host "built: dist\PumpFL\ ; try: dist\PumpFL\PumpFL.exe --self-test (the summary goes to the log file)"

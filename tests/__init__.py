"""The test suite, a package: its helpers import as tests.* (a dependency, torch-fidelity 0.4.0,
installs a top-level package named tests that would otherwise win over this folder)."""

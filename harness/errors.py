"""Errors the CLI turns into one clear line and exit code 2, and warnings as one line."""

import sys


class UserError(Exception):
    """Bad input from the user (spec, flag, file, registry): shown as one line, exit code 2."""


class PluginError(Exception):
    """An exception raised inside a plugin, labelled with the plugin's package and version."""

    def __init__(self, plugin: str, package: str, version: str, cause: BaseException):
        self.plugin, self.package, self.version, self.cause = plugin, package, version, cause
        super().__init__(
            f"plugin {plugin!r} from {package} {version} failed: {type(cause).__name__}: {cause}"
        )

    def __reduce__(self):
        """Picklable, so a failure in a worker process reaches the runner intact."""
        return (PluginError, (self.plugin, self.package, self.version, self.cause))


def warn(message: str) -> None:
    """One line on stderr, so that `plan --json` stays clean on stdout."""
    print(f"warning: {message}", file=sys.stderr)

"""The one exception type users see: the CLI prints it as a single line and exits 2."""


class GansearchError(Exception):
    """Bad input (file, key, value) with a message that names what is wrong and the valid choices."""


class ConfigError(GansearchError):
    """A config file or override that does not fit the typed config tree."""


class DataError(GansearchError):
    """A dataset that is missing, malformed, or cannot be read."""

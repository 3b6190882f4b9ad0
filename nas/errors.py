"""The error hierarchy, the whole of it. The CLI prints any NasError as one line and exits with its
`exit_code`: 2 for bad input (the default), 1 for a claim that does not hold."""


class NasError(Exception):
    """Base of every error a user can cause or fix; `exit_code` is what the CLI returns."""

    exit_code = 2


class ConfigError(NasError):
    """A budget or study file is malformed: names the file, the key path, the value and what is allowed."""

    def __init__(self, path: str, key: str, message: str):
        self.path, self.key = path, key
        where = f"{path}: {key}: " if key else f"{path}: "
        super().__init__(one_line(where + message))


def one_line(text: str) -> str:
    """Control characters from hostile input would break the CLI's one-line error contract."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class DataError(NasError):
    """A dataset cannot be loaded (missing, corrupt, wrong hash); says which command fixes it."""


class SpecError(NasError):
    """An architecture spec is malformed or geometrically invalid (feature map shrinks below 1x1)."""


class TrainingFailed(NasError):
    """A training run ended without a result (NaN loss, divergence); `reason` says why."""

    exit_code = 1

    def __init__(self, reason: str, epoch: int | None = None):
        self.reason, self.epoch = reason, epoch
        super().__init__(reason if epoch is None else f"epoch {epoch}: {reason}")


class UsageError(NasError):
    """A command was called wrongly: an option out of range, options that exclude each other."""


class OptionError(UsageError, ValueError):
    """A training option out of range (`nas train --batch-size 0`); a ValueError too, for callers
    that build TrainOptions in code."""


class RunNotFound(NasError):
    """A run id (or id prefix) names no run, or several, in the tracking store."""


class StoreNotFound(NasError):
    """No tracking store where a command that only reads one looked for it."""


class ArtifactError(NasError):
    """A stored artifact is missing or corrupt."""


class SearchError(NasError):
    """The search cannot go on (too many rejections in a row, nothing trainable)."""


class VerdictFailed(NasError):
    """A winner fails its budget and the command needs a passing one (`nas export` without --allow-fail)."""

    exit_code = 1


class ExportCheckFailed(NasError):
    """An exported model does not reproduce the verified one (logits or accuracy differ)."""

    exit_code = 1

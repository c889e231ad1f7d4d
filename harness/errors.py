"""Every error the harness raises on purpose, in one place, so that any module can raise one without importing the
module that orchestrates runs. Each message names what failed and what to do."""
from __future__ import annotations


class Unavailable(RuntimeError):
    """This configuration cannot run here (a scheme on a device or engine that cannot run it); recorded as
    status=unavailable with the reason, never as a failure."""


class ConversionError(Unavailable):
    """A runtime's own converter (ONNX Runtime GenAI's builder, OpenVINO's exporter) cannot convert this model: the
    pair is recorded unavailable with the converter's last error line, since the limit is the converter's."""


class ModelLoadError(RuntimeError):
    """The model could not be loaded; the message names the file or id and what to do."""


class ProofError(RuntimeError):
    """The scheme did not quantise what it claims: no row is reported as ok."""


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the key, the value and what is allowed."""


class UnknownScheme(KeyError):
    """No precision scheme of that name; the message lists the choices."""

    def __str__(self) -> str:
        return str(self.args[0])


class ResultsFileError(ValueError):
    """The results CSV cannot be read safely; nothing was written."""


class ResultsWriteError(OSError):
    """A row could not be written whole; the file was restored to what it held before."""

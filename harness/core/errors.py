"""Every error the harness raises on purpose, in one place and under one base class, `HarnessError`, so that any
module can raise one without importing the module that orchestrates runs, and a caller catches the harness's own
errors narrowly (a programming error, a KeyError of a dict, is never taken for a refused configuration). Each message
names what failed and what to do."""
from __future__ import annotations


class HarnessError(Exception):
    """The base of every error the harness raises on purpose."""


class Unavailable(HarnessError, RuntimeError):
    """This configuration cannot run here (a scheme on a device or engine that cannot run it); recorded as
    status=unavailable with the reason, never as a failure."""


class ConversionError(Unavailable):
    """A runtime's own converter (ONNX Runtime GenAI's builder, OpenVINO's exporter) cannot convert this model: the
    pair is recorded unavailable with the converter's last error line, since the limit is the converter's."""


class ModelLoadError(HarnessError, RuntimeError):
    """The model could not be loaded; the message names the file or id and what to do."""


class ProofError(HarnessError, RuntimeError):
    """The scheme did not quantise what it claims: no row is reported as ok."""


class ConfigError(HarnessError, ValueError):
    """A configuration value is not allowed; the message names the key, the value and what is allowed."""


class UnknownName(HarnessError, KeyError):
    """No registered unit of that name (a scheme, a task, a claim check); the message lists the choices."""

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownScheme(UnknownName):
    """No precision scheme of that name; the message lists the choices."""


class UnknownTask(UnknownName):
    """No evaluation task of that name; the message lists the choices."""


class ResultsFileError(HarnessError, ValueError):
    """The results CSV cannot be read safely; nothing was written."""


class ResultsWriteError(HarnessError, OSError):
    """A row could not be written whole; the file was restored to what it held before."""


class SideTableError(HarnessError, ValueError):
    """A side table of the results CSV (load-curve levels, LoadGen profiles) that cannot be read or appended to as
    one: the message names the file, and the column and row."""


CurvesFileError = SideTableError  # its name before LoadGen's profiles got a side table of their own


class CacheWriteError(HarnessError, OSError):
    """A cache file could not be written (a full disk, a read-only or over-quota cache): the message names the file
    under the cache, the system's reason and the free space there; nothing half-written is left."""


class ReferenceBuildError(HarnessError, RuntimeError):
    """The reference model's outputs could not be built; the message holds the build's own reason."""


class ClaimError(HarnessError, ValueError):
    """A claims-registry entry does not follow the schema."""


class ConfigRefused(HarnessError, ValueError):
    """A configuration the checks refuse (the one-line message the command line prints)."""

"""Import pyas2lib in tests although oscrypto 1.3.0 cannot read OpenSSL 3.0.10+ versions.

pyas2lib needs oscrypto. oscrypto 1.3.0, the newest release on PyPI, finds libcrypto's
version with the pattern `\\b(\\d\\.\\d\\.\\d[a-z]*)\\b`, which matches no version with a
two-digit part ("OpenSSL 3.0.19 27 Jan 2026": "3.0.1" is followed by "9", so no word
boundary), and raises LibraryNotFoundError("Error detecting the version of libcrypto")
on import (wbond/oscrypto#75, #78). The fix, commit d5f3437 "Make OpenSSL version
regexes more robust" on oscrypto's master, is not released, and installing from git is
not possible here (only package registries are reachable).

`oscrypto.use_openssl(libcrypto_path, libssl_path)` does not help: it chooses the
library files, but the version is still read from the library and parsed with the same
pattern. So, before anything imports oscrypto's OpenSSL backend, load_pyas2lib() compiles
oscrypto's own `_openssl/_libcrypto_cffi.py` (or `_ctypes.py`) with the version patterns
of d5f3437 and registers the result under the module's name. Nothing else of oscrypto is
changed, no file on disk is touched, and a fixed oscrypto (whose source no longer holds
the old patterns) is imported as it is. Tests only: the examples import pyas2lib plainly.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

# oscrypto 1.3.0's patterns and those of master (commit d5f3437), as written in its source.
_OLD_TO_NEW = {
    r"re.search('\\b(\\d\\.\\d\\.\\d[a-z]*)\\b', version_string)": (
        r"re.search('\\b(\\d+\\.\\d+\\.\\d+[a-z]*)\\b', version_string)"
    ),
    r"re.search('(?<=LibreSSL )(\\d\\.\\d(\\.\\d)?)\\b', version_string)": (
        r"re.search('(?<=LibreSSL )(\\d+\\.\\d+(\\.\\d+)?)\\b', version_string)"
    ),
    r"re.sub('(\\d)([a-z]+)', '\\1.\\2', version)": r"re.sub('(\\d+)([a-z]+)', '\\1.\\2', version)",
}


def _patch_version_detection() -> bool:
    """Load oscrypto's libcrypto module with the fixed patterns; whether anything changed."""
    import oscrypto

    name = f"oscrypto._openssl._libcrypto_{oscrypto.ffi()}"
    if name in sys.modules:
        return False
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None or spec.origin is None:
        return False
    source = spec.loader.get_source(name)  # type: ignore[attr-defined]
    if source is None:
        return False
    fixed = source
    for old, new in _OLD_TO_NEW.items():
        fixed = fixed.replace(old, new)
    if fixed == source:
        return False
    module: ModuleType = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        exec(compile(fixed, spec.origin, "exec"), module.__dict__)  # noqa: S102
    except BaseException:
        del sys.modules[name]
        raise
    return True


def load_pyas2lib() -> str | None:
    """Import pyas2lib (patching oscrypto if needed); None if it works, else why not."""
    try:
        import oscrypto  # noqa: F401
    except ImportError:
        return "pyas2lib is not installed (pip install -e '.[test]')"
    try:
        _patch_version_detection()
        import pyas2lib  # noqa: F401
        from oscrypto import asymmetric  # noqa: F401
    except Exception as error:  # any failure means: skip, saying why
        return f"pyas2lib cannot be imported here: {type(error).__name__}: {error}"
    return None

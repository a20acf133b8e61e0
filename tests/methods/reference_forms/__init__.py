"""The reference implementations' loss formulas, transcribed independently of unlearning/ (the oracle of
tests/methods/test_fidelity.py and benchmarks/bench_fidelity.py; nothing under test is imported here).

Each function follows the vectorised code of the repository it names, quirks included (read from
locuslab/open-unlearning ``src/trainer/utils.py`` + ``src/trainer/unlearn/*.py``, nmndeep/JensUn-Unlearning
``src/trainer/utils.py`` and annahuynhly/BalDRO ``src/trainer/utils.py``), but on tensors instead of models:
``logits`` [B, T, V], ``labels`` [B, T] (-100 = unscored), ``hidden`` [B, T, d]. The ``*_project`` functions
are the project's deliberately different forms, written from their docstrings' formulas.
"""

from .shared import *  # noqa: F401,F403 - the oracle is used as one namespace: `import reference_forms as R`
from .shared import IGNORE  # noqa: F401
from .losses import *  # noqa: F401,F403
from .procedures import *  # noqa: F401,F403
from .t3 import *  # noqa: F401,F403
from .lunar import *  # noqa: F401,F403
from .lmcleaner import *  # noqa: F401,F403

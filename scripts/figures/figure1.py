"""Figure 1 of Simonyan et al. (2013), class models: for each class the image
that maximises its score, captioned with the class.

    python scripts/figures/figure1.py digits                  # writes docs/figure1-digits.png
    python scripts/figures/figure1.py imagenet [OVERRIDES]    # GoogLeNet; see the preset's header
    python scripts/figures/figure1.py digits --check          # rebuild and compare with docs/

Runs preset conf/experiment/figure1_VARIANT.yaml as `python run.py -m experiment=figure1_VARIANT
[OVERRIDES]` (sweep folder multirun/figure1_VARIANT) and lays out its jobs (visexp.figures).
"""

import sys
from pathlib import Path

from visexp.figures import main

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], number=1, root=ROOT))

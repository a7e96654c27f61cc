"""Figure 2 of Simonyan et al. (2013), image-specific class saliency maps:
eight images over their maps, each captioned with its class.

    python scripts/figures/figure2.py digits                  # writes docs/figure2-digits.png
    python scripts/figures/figure2.py imagenet [OVERRIDES]    # GoogLeNet; see the preset's header
    python scripts/figures/figure2.py digits --check          # rebuild and compare with docs/

Runs preset conf/experiment/figure2_VARIANT.yaml as `python run.py -m experiment=figure2_VARIANT
[OVERRIDES]` (sweep folder multirun/figure2_VARIANT) and lays out its jobs (visexp.figures).
"""

import sys
from pathlib import Path

from visexp.figures import main

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], number=2, root=ROOT))

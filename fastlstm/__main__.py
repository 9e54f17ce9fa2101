"""`python -m fastlstm`: the `fastlstm` command."""

import sys

from fastlstm.cli import main

sys.exit(main())

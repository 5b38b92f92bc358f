"""``python -m dcmnet`` runs the command line."""
import sys

from dcmnet.cli import main

sys.exit(main())

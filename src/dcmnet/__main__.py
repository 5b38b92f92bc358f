"""``python -m dcmnet`` runs the command line."""
import sys

from dcmnet.cli.main import main

sys.exit(main())

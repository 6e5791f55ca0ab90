import sys
from sg_ofctl.cli import main
sys.exit(main())

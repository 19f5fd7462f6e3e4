import sys

from weft_proxy.init.main import main

sys.exit(main())

"""`python -m gan_jax COMMAND ...`: the `gan-jax` command."""

import sys

from gan_jax.tools.cli import main

sys.exit(main())

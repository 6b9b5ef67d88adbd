"""`python -m cyclegan_convert` is `ccv`."""
from .cli import main

main()

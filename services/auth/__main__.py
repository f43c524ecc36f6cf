from services.auth.server import SPEC
from services.common.server import main

main(SPEC)

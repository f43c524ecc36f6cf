from services.common.server import main
from services.risk.server import SPEC

main(SPEC)

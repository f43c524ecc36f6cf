from services.common.server import main
from services.market.server import SPEC

main(SPEC)

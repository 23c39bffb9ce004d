from skate.core.node_manager.server import main

main()

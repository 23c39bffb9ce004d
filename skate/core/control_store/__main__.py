from skate.core.control_store.server import main

main()

from drorch.cli.app import main

main()

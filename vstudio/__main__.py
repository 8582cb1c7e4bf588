from vstudio.cli.entry import main

main()

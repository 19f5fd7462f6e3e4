from weft_cli.entry import main

main()

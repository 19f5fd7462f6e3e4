from weft_operator.main import main

main()

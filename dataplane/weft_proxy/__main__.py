from weft_proxy.main import main

main()

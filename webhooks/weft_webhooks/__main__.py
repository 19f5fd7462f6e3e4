from weft_webhooks.main import main

main()

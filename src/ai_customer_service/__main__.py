from ai_customer_service.cli import main

main()

from posevid.cli import main

main()

from llmscisci.cli import main

main()

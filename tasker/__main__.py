from tasker.cli import main

main()

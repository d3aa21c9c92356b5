(function* () {}).constructor('yield 1')

(function () {}).constructor('return 1')()

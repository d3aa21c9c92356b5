(async function () {}).constructor('return 1')

(async function* () {}).constructor('yield 1')

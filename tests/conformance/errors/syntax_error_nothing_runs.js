console.log('must not print');
function never() {
  let = = 2;
}

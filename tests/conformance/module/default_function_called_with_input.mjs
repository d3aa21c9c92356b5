export default function (arg) {
  return { got: arg, same: JSON.stringify(arg) === JSON.stringify(input) };
}

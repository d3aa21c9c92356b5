export default function (arg) {
  return arg.n + 1;
}

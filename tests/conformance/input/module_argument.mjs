export default function (arg) {
  return [arg, input];
}

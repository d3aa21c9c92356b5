export default function () {
  undeclaredName = 1;
  return 'unreachable';
}

export default function () {
  throw new RangeError('inner');
}

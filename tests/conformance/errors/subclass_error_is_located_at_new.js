// An error of an Error subclass is located where it is constructed, not in the class: its
// stack starts at the caller of `new`, past every constructor, as V8 starts it.
class ValidationError extends Error {}

class Base extends Error {
  constructor(message) {
    super(message);
    this.name = 'Base';
  }
}
class Leaf extends Base {}

function check(x) {
  if (!x) throw new ValidationError('invalid');
}
try {
  check(0);
} catch (e) {
  const top = e.stack.split('\n').find((l) => l.trim().startsWith('at '));
  console.log(top.trim().replace(/ \(.*/, ''));
}
const make = () => new Leaf('leaf');
throw make();

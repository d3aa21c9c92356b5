// valueOf (reached when toString is not callable), a header name given in an array pair, and a
// Symbol.toPrimitive on the method: each trap runs once, and the host uses the value it checked.
let urlCalls = 0, nameCalls = 0, methodCalls = 0;
const url = {
  toString: undefined,
  valueOf() { urlCalls++; return urlCalls === 1 ? 'https://evil.example/' : 'https://api.example.com/v1/'; },
};
const name = { toString() { nameCalls++; return nameCalls === 1 ? 'x-ok' : 'bad name\n'; } };
const method = { [Symbol.toPrimitive]() { methodCalls++; return methodCalls === 1 ? 'GET' : 'BAD METHOD'; } };
fetch(url, { method, headers: [[name, 'v']] }).then(
  () => 'fetched',
  (e) => [urlCalls, nameCalls, methodCalls, e instanceof TypeError, e.message.includes('https://evil.example/')],
)

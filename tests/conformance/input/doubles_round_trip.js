// Doubles cross the host boundary exactly, both ways: as the input, and as the result.
// `String(x)` is the guest's own shortest text for each, which the host must not change.
const computed = [0.1 + 0.2, 1 / 3, 2 / 3 * 1e-300, 123456789012345680000, -1.8890448425800243e-13];
[input, input.map(String), computed, computed.map(String)];

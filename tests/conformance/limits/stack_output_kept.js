console.log('pre');
(function r() { r(); })();

(function (P, hostcall) { return {}; })

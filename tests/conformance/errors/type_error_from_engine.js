const o = null;
o.prop;

new Function('return )');

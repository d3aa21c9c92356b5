['pali', 'sade'].join('')

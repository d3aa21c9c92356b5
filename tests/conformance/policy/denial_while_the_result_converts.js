// A policy denial in the guest's own toJSON, while the result converts, is still a denial.
({ toJSON() { return eval('1'); } });

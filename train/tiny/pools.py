"""Entity pools for the synthetic corpus (data only; corpus.py holds the logic).

Cities keep their proper spelling (accents, hyphens, lowercase particles); rooms, timer labels
and reminder pieces are lowercase except proper names. corpus.py splits every pool into a train
part and a held-out part with a stable hash, so held-out requests copy entities never seen in
training.
"""

from __future__ import annotations

CITIES = """
Paris London Berlin Madrid Rome Lisbon Dublin Amsterdam Brussels Vienna Prague Warsaw Budapest
Athens Oslo Stockholm Helsinki Copenhagen Reykjavik Zurich Geneva Bern Munich Hamburg Frankfurt
Cologne Stuttgart Düsseldorf Leipzig Dresden Nuremberg Hanover Bremen Milan Naples Turin Florence
Venice Bologna Genoa Palermo Barcelona Valencia Seville Bilbao Málaga Zaragoza Granada Porto
Lyon Marseille Nice Toulouse Bordeaux Nantes Strasbourg Lille Montpellier Rennes Grenoble
Antwerp Ghent Bruges Rotterdam Utrecht Eindhoven Luxembourg Kraków Gdańsk Wrocław Poznań Łódź
Bratislava Ljubljana Zagreb Split Belgrade Sarajevo Sofia Bucharest Chișinău Kyiv Lviv Odesa
Vilnius Riga Tallinn Minsk Moscow Istanbul Ankara İzmir Antalya Nicosia Valletta Tirana Skopje
Podgorica Edinburgh Glasgow Manchester Liverpool Birmingham Leeds Bristol Cardiff Belfast Oxford
Cambridge Brighton Newcastle Sheffield Nottingham York Bath Cork Galway Aberdeen Inverness
Gothenburg Malmö Uppsala Bergen Trondheim Tampere Turku Aarhus Odense Salzburg Innsbruck Graz
Basel Lausanne Lucerne Tokyo Osaka Kyoto Yokohama Nagoya Sapporo Fukuoka Kobe Hiroshima Sendai
Seoul Busan Incheon Beijing Shanghai Shenzhen Guangzhou Chengdu Wuhan Hangzhou Nanjing Xi'an
Chongqing Tianjin Suzhou Harbin Taipei Kaohsiung Manila Cebu Jakarta Surabaya Bandung
Singapore Bangkok Phuket Hanoi Danang Yangon Vientiane Dhaka Kathmandu Colombo Karachi Lahore
Islamabad Mumbai Delhi Bangalore Chennai Kolkata Hyderabad Pune Ahmedabad Jaipur Lucknow Kochi
Dubai Doha Riyadh Jeddah Muscat Manama Kuwait Tehran Baghdad Amman Beirut Jerusalem Haifa
Damascus Cairo Alexandria Casablanca Marrakesh Rabat Fez Tunis Algiers Tripoli Khartoum
Nairobi Mombasa Kampala Kigali Lagos Abuja Accra Dakar Bamako Abidjan Luanda Lusaka Harare
Maputo Johannesburg Durban Pretoria Windhoek Gaborone Antananarivo Mogadishu Asmara Djibouti
Toronto Montreal Vancouver Calgary Edmonton Ottawa Winnipeg Quebec Halifax Victoria Regina
Saskatoon Chicago Boston Seattle Denver Houston Dallas Austin Phoenix Atlanta Miami Orlando
Tampa Detroit Philadelphia Baltimore Pittsburgh Cleveland Cincinnati Columbus Indianapolis
Nashville Memphis Louisville Minneapolis Milwaukee Omaha Portland Sacramento Oakland Fresno
Honolulu Anchorage Boise Albuquerque Tucson Charlotte Raleigh Richmond Buffalo Rochester Hartford
Providence Savannah Charleston Birmingham Jacksonville Tulsa Wichita Reno Spokane Madison
Mexico Guadalajara Monterrey Puebla Tijuana Cancún Mérida Oaxaca Havana Kingston Nassau
Panama Bogotá Medellín Cali Cartagena Quito Guayaquil Lima Cusco Arequipa Santiago Valparaíso
Caracas Maracaibo Montevideo Asunción Brasília Salvador Recife Fortaleza Curitiba Manaus
Belém Sydney Melbourne Brisbane Perth Adelaide Canberra Hobart Darwin Cairns Auckland Wellington
Christchurch Queenstown Dunedin Suva Nouméa Papeete Ulaanbaatar Almaty Astana Tashkent Samarkand
Bishkek Dushanbe Ashgabat Baku Tbilisi Yerevan Batumi Novosibirsk Kazan Yekaterinburg Vladivostok
Murmansk Irkutsk Sochi Tromsø Marbella Ibiza Mykonos Santorini Dubrovnik Kotor Sarajevo
Heidelberg Freiburg Bonn Mainz Aachen Kiel Rostock Lübeck Potsdam Augsburg Regensburg Würzburg
"""

MULTIWORD_CITIES = [
    "New York", "Los Angeles", "San Francisco", "San Diego", "San Jose", "San Antonio",
    "Las Vegas", "New Orleans", "Salt Lake City", "Kansas City", "Oklahoma City", "St Louis",
    "Des Moines", "El Paso", "Fort Worth", "Santa Fe", "Santa Barbara", "Palm Springs",
    "Long Beach", "Virginia Beach", "Colorado Springs", "Ann Arbor", "Green Bay", "Baton Rouge",
    "Little Rock", "Thunder Bay", "Niagara Falls", "Mexico City", "Buenos Aires", "Rio de Janeiro",
    "São Paulo", "Belo Horizonte", "Porto Alegre", "La Paz", "Santa Cruz", "San Juan",
    "Santo Domingo", "Port of Spain", "San José", "Panama City", "Cape Town", "Port Elizabeth",
    "Addis Ababa", "Dar es Salaam", "Kuala Lumpur", "Ho Chi Minh City", "Phnom Penh",
    "Hong Kong", "New Delhi", "Abu Dhabi", "Tel Aviv", "Sharm el-Sheikh", "Frankfurt am Main",
    "The Hague", "Den Bosch", "Aix-en-Provence", "Saint-Étienne", "Le Havre", "Le Mans",
    "La Rochelle", "Clermont-Ferrand", "San Sebastián", "Las Palmas", "Santa Cruz de Tenerife",
    "Palma de Mallorca", "A Coruña", "Stratford-upon-Avon", "Milton Keynes", "St Andrews",
    "Newcastle upon Tyne", "Kingston upon Hull", "Baden-Baden", "Garmisch-Partenkirchen",
    "Sankt Moritz", "St. Petersburg", "Nizhny Novgorod", "Rostov-on-Don", "Kuala Terengganu",
    "Chiang Mai", "Siem Reap", "Da Nang", "Hoi An", "Gold Coast", "Sunshine Coast",
    "Alice Springs", "Palmerston North", "Bay of Islands", "Rio Branco", "Ciudad Juárez",
    "Puerto Vallarta", "Playa del Carmen", "San Miguel de Allende", "Punta Cana", "Mar del Plata",
    "Viña del Mar", "Puerto Montt", "Las Cruces", "Myrtle Beach", "Key West", "Lake Tahoe",
    "Cedar Rapids", "Sioux Falls", "Grand Rapids", "Saint Paul", "Jersey City", "Fort Lauderdale",
    "West Palm Beach", "Santa Monica", "Quebec City", "Trois-Rivières", "Sault Ste. Marie",
    "Port Moresby", "Bandar Seri Begawan", "Hạ Long", "Nuuk", "Pointe-Noire", "Ouagadougou",
]

ROOMS = [
    "kitchen", "living room", "bedroom", "master bedroom", "bathroom", "hallway", "office",
    "garage", "dining room", "basement", "attic", "porch", "patio", "garden", "nursery",
    "kids room", "guest room", "guest bedroom", "laundry room", "study", "den", "family room",
    "playroom", "pantry", "closet", "walk-in closet", "mudroom", "foyer", "entryway",
    "staircase", "landing", "loft", "gym", "home office", "sunroom", "conservatory", "library",
    "utility room", "balcony", "terrace", "backyard", "front yard", "driveway", "shed",
    "workshop", "media room", "game room", "music room", "second bedroom", "upstairs bathroom",
    "downstairs bathroom", "ensuite", "cellar", "wine cellar", "hall", "lounge", "toilet",
    "upstairs hallway", "front porch", "back porch", "reading nook", "craft room", "spare room",
    "baby's room", "teen room", "tv room", "sewing room", "boot room", "powder room",
]

# timer labels (bare nouns; templates add "the"/"my")
TIMER_LABELS = [
    "pasta", "eggs", "rice", "tea", "coffee", "pizza", "bread", "cookies", "cake", "muffins",
    "roast", "roast chicken", "chicken", "steak", "potatoes", "baked potatoes", "fries",
    "soup", "stew", "chili", "curry", "noodles", "dumplings", "lasagna", "brownies", "pie",
    "turkey", "salmon", "fish", "veggies", "broccoli", "quinoa", "oatmeal", "porridge",
    "boiled eggs", "soft boiled eggs", "pancakes", "waffles", "bagels", "popcorn", "dough",
    "sourdough", "garlic bread", "oven", "laundry", "dryer", "washing machine", "dishwasher",
    "nap", "power nap", "workout", "plank", "stretching", "yoga", "meditation", "run",
    "homework", "study session", "reading", "piano practice", "break", "coffee break",
    "lunch break", "parking", "parking meter", "meeting", "call", "face mask", "hair dye",
    "tanning", "bath", "kids", "screen time", "video games", "bedtime", "plants", "sprinklers",
    "slow cooker", "pressure cooker", "grill", "barbecue", "marinade", "jam", "candy",
    "fudge", "brisket", "ribs", "meatballs", "risotto", "tacos", "burgers", "sausages",
]

# reminder tasks: verb phrases built from parts (see corpus._tasks)
PEOPLE = [
    "mom", "dad", "grandma", "grandpa", "the plumber", "the dentist", "the doctor", "the vet",
    "the bank", "the landlord", "the electrician", "my sister", "my brother", "my boss",
    "the school", "the insurance company", "Sarah", "John", "Anna", "Mike", "Priya", "Carlos",
    "Emma", "Tom", "Aunt Linda", "Uncle Joe", "the babysitter", "the mechanic", "the pharmacy",
    "the gym", "my accountant", "Grandma Rose", "the caterer", "the hotel", "Dr. Patel",
    "the cable company", "my coach", "the florist", "Lucas", "Mei", "Fatima", "Olek",
]
BUY_ITEMS = [
    "milk", "eggs", "bread", "batteries", "dog food", "cat food", "toilet paper", "coffee beans",
    "a birthday card", "flowers", "wine", "diapers", "printer ink", "light bulbs", "shampoo",
    "toothpaste", "bananas", "cheese", "butter", "a gift for Sarah", "stamps", "laundry detergent",
    "trash bags", "sunscreen", "new socks", "a phone charger", "paper towels", "olive oil",
    "fresh basil", "tickets for the concert", "a bus pass", "birdseed", "potting soil",
]
PICKUP_ITEMS = [
    "the kids", "the dry cleaning", "the package", "my prescription", "Emma from school",
    "the car from the garage", "the cake", "groceries", "the keys from Mike", "the mail",
    "the rental car", "my glasses", "the photos", "Tom from practice", "the takeaway",
]
PAY_ITEMS = [
    "the rent", "the electricity bill", "the phone bill", "the water bill", "the credit card",
    "the internet bill", "the babysitter", "the parking ticket", "the gas bill", "my taxes",
    "the car insurance", "the school fees",
]
BOOK_ITEMS = [
    "a haircut", "a table for Friday", "the car service", "a dentist appointment",
    "a doctor's appointment", "the flights", "a hotel room", "a massage", "the vet appointment",
    "a cleaner", "tennis court", "a taxi to the airport", "an eye test",
]
OTHER_TASKS = [
    "water the plants", "take out the trash", "put the bins out", "walk the dog",
    "feed the cat", "feed the fish", "take my pills", "take my vitamins", "check the oven",
    "move the laundry to the dryer", "defrost the chicken", "charge my phone", "lock the back door",
    "renew my passport", "renew the car registration", "submit the report", "send the invoice",
    "file my expenses", "back up my laptop", "cancel the gym membership", "return the library books",
    "return the parcel", "stretch", "drink some water", "stand up and stretch", "go to bed",
    "start dinner", "preheat the oven", "clean the fridge", "change the bedsheets",
    "mow the lawn", "wash the car", "check the mail", "study for the exam", "finish the slides",
    "practice piano", "meditate", "go for a run", "pack my gym bag", "print the boarding passes",
    "check in for my flight", "reply to Anna's email", "update my resume", "schedule the meeting",
    "read chapter 5", "prepare the presentation", "turn off the sprinklers", "bring in the laundry",
    "sign the permission slip", "order the birthday cake", "bake the cookies",
]
CONTACT_VERBS = ["call", "text", "email", "message", "ring", "phone", "visit", "thank"]

# when phrases: (surface, argument) -- argument drops a leading "at"/"on"; "in ..." is kept
WHEN = [
    "tomorrow at 9am", "at 5pm", "tonight", "tomorrow morning", "on friday", "next monday",
    "in 2 hours", "in 20 minutes", "at noon", "this evening", "on saturday at 10", "tomorrow",
    "at 7:30", "on june 3rd", "on the 15th", "next week", "in an hour", "at 6 pm",
    "2025-06-01 18:00", "this afternoon", "after lunch", "before bed", "at 8 tomorrow",
    "on monday morning", "at 3:15 pm", "in 45 minutes", "tomorrow evening", "on sunday",
    "next tuesday at 2pm", "at 11am", "in half an hour", "on wednesday", "thursday afternoon",
    "at midnight", "in 3 days", "on the weekend", "first thing tomorrow", "at 9:00",
    "tomorrow at noon", "on march 12", "at 10 tonight", "in 10 minutes", "at 4", "every morning",
    "at 7am", "friday at 5", "on christmas eve", "next month", "at lunchtime", "in 90 minutes",
    "at 17:00", "on the 1st", "monday at 8:30am", "tonight at 9", "tomorrow afternoon at 3",
    "at 2:45", "this weekend", "on tuesday at 6pm", "in a week", "at 6:30 in the morning",
]

# convert_units pairs: (from canonical, to canonical); surfaces come from the tool's alias table
UNIT_PAIRS = [
    ("km", "mi"), ("mi", "km"), ("m", "ft"), ("ft", "m"), ("cm", "in"), ("in", "cm"),
    ("m", "yd"), ("yd", "m"), ("mm", "in"), ("km", "m"), ("nmi", "km"), ("ft", "in"),
    ("mi", "ft"), ("cm", "mm"), ("kg", "lb"), ("lb", "kg"), ("g", "oz"), ("oz", "g"),
    ("st", "kg"), ("kg", "st"), ("t", "kg"), ("lb", "oz"), ("mg", "g"), ("kg", "g"),
    ("l", "gal"), ("gal", "l"), ("ml", "fl oz"), ("fl oz", "ml"), ("cup", "ml"), ("ml", "cup"),
    ("tbsp", "tsp"), ("tsp", "ml"), ("l", "ml"), ("pt", "l"), ("qt", "l"), ("m3", "l"),
    ("tbsp", "ml"), ("cup", "tbsp"), ("km/h", "mph"), ("mph", "km/h"), ("m/s", "km/h"),
    ("kn", "km/h"), ("ft/s", "m/s"), ("mph", "m/s"), ("h", "min"), ("min", "s"), ("day", "h"),
    ("week", "day"), ("s", "ms"), ("h", "s"), ("day", "min"), ("min", "h"),
    ("celsius", "fahrenheit"), ("fahrenheit", "celsius"), ("celsius", "kelvin"),
    ("kelvin", "celsius"), ("fahrenheit", "kelvin"),
]
